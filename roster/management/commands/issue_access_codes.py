from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from roster.access_codes import access_code_list_xlsx, access_codes_issue
from roster.models import School, Student, User


class Command(BaseCommand):
    help = (
        "Issue one-time screening access codes for the enrolled students of a school, a grade or a class who have no "
        "working code and have not answered yet; codes already printed keep working (run it again safely). Codes are "
        "credentials: they are printed only with --show."
    )

    def add_arguments(self, parser):
        parser.add_argument("--school", required=True, help="school code")
        parser.add_argument("--grade", type=int, help="only this grade (1 to 12)")
        parser.add_argument("--class-number", type=int, help="only this class of --grade")
        parser.add_argument("--user", help="issue as this user: their scope applies and the codes name them")
        parser.add_argument("--xlsx", help="also write the class teacher's list (school, class, name, code) here")
        parser.add_argument("--show", action="store_true", help="print the codes (they are credentials)")

    def handle(self, *args, school, grade, class_number, user, xlsx, show, **options):
        if class_number is not None and grade is None:
            raise CommandError("--class-number needs --grade.")
        school_obj = School.objects.filter(code=school.strip()).first()
        if school_obj is None:
            raise CommandError(f"Unknown school code “{school}”.")
        actor = None
        if user:
            actor = User.objects.filter(username=user, is_active=True).first()
            if actor is None:
                raise CommandError(f"No active user “{user}”.")
        students = Student.objects.filter(school=school_obj)
        if grade is not None:
            students = students.filter(school_class__grade=grade)
        if class_number is not None:
            students = students.filter(school_class__number=class_number)
        try:
            codes = access_codes_issue(actor=actor, students=students)
        except PermissionDenied as error:
            raise CommandError(f"Nothing issued: {error}") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Issued {len(codes)} access codes for {school_obj.code} {school_obj}: {len(codes)} new slips; "
                f"{codes.already_live} students already have a working code (not changed); "
                f"{codes.answered} already answered."
            )
        )
        if xlsx:
            Path(xlsx).write_bytes(access_code_list_xlsx(codes))
            self.stdout.write(f"Wrote {xlsx} (it contains the codes: hand it to the class teachers, not by chat).")
        if show:
            for code in codes:
                student = code.student
                self.stdout.write(f"{student.school_class}\t{student.student_no}\t{student.name}\t{code.code}")
